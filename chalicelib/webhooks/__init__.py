"""Webhooks (#17): endpoints a workspace registers, and the signed deliveries of its change events.

urls (where a delivery may go: the SSRF guard), store (the endpoints and deliveries tables),
service (the rules behind the routes of chalicelib.api.webhooks), fanout (the audit stream's
consumer: one delivery per event and subscribed endpoint), delivery (the queue's consumer:
signing, sending, retrying), queue (the SQS client).
"""
