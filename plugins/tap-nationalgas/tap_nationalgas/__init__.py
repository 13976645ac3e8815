"""Singer tap for the National Gas operational data API."""
