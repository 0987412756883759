"""The registry client: HTTP, release bundle verification, trust policy, log audit, pull, publish
and the witness. Imports core and toolchain only."""
