"""The only code that talks to the outside world (the Kubernetes API)."""

import dns._features

# Before adapters.dns imports dnspython's query modules: no DNS over HTTPS is ever asked, and with
# the feature on, dnspython imports an HTTP client stack (httpcore2: about 6 MiB resident).
dns._features.force("doh", False)
