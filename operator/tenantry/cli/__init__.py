"""The `tenantry` command for partners and platform teams."""
