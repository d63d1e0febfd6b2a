"""Workspaces: who may act where, and with which role."""
