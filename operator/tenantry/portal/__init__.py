"""The partners' web portal: one login, all of a partner's customers, and nobody else's."""
