"""tenantry: run SaaS customer tenants from git with a Kubernetes operator."""

__version__ = "0.1.0"
