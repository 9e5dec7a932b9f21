"""connectors/onvif."""
