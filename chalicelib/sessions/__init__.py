"""Sessions: refresh tokens in families (rotation, reuse detection), sign-out, password change."""
