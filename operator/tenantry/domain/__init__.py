"""Pure decisions about tenants: names, desired child objects, status. No I/O, no kopf."""
