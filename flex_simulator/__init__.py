"""A local HPE GreenLake Flex Solutions API simulator (never imports tap_hpe_flex)."""
