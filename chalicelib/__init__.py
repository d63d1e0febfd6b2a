"""Contact Notes: the code the Lambda functions ship (services, persistence, auth, HTTP edge)."""
