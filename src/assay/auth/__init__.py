"""Access control: API tokens with scopes, stored hashed."""
