"""Loopback fakes of the ESPs, each validating requests against the vendor contract in
`tests/connectors/contracts/` (derived from the vendors' own OpenAPI files)."""
