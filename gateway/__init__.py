"""Quality Revitalization Platform gateway: The public entry point: API clients, keys and scopes in front of the four services."""
