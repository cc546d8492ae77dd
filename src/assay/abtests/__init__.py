"""A/B tests: live traffic split between model versions, and the evidence for a winner."""
