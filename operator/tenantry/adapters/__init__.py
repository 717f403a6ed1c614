"""The only code that talks to the outside world (the Kubernetes API)."""

import contextlib

# Before adapters.dns imports dnspython's query modules: no DNS over HTTPS is ever asked, and with
# the feature on, dnspython imports an HTTP client stack (httpcore2: about 6 MiB resident). The
# switch is dnspython's own (dns._features, 2.4 and later); without it, only memory is lost.
with contextlib.suppress(ImportError, AttributeError):
    import dns._features

    dns._features.force("doh", False)
