"""REST routes under /api/v1, one module per concept; each route calls one service method."""
