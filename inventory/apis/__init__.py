"""REST endpoints of the inventory app, one module per resource."""
