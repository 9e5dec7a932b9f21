"""Camera management: the registry's owner. Provisioning (one or thousands), health sweep,
allowed-network guard; built on ``xueliang.connectors.onvif`` for the device side."""
