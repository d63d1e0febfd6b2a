"""Live updates (#17): a workspace's change events pushed to its open WebSocket clients.

- sockets: the WebSocket API's $connect / $default / $disconnect handlers (app.py wires them).
  $connect verifies the access token from `?token=` as the REST authorizer does and stores the
  connection (connections); a bad, missing or expired token is refused with a 401.
- connections: the connections table (two items per connection, TTL).
- fanout: the consumer of the audit table's stream: each new event, posted to every connection
  of its workspace through API Gateway's Management API (`make run`: devtools.live_gateway).
"""
