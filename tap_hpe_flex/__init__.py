"""Singer tap for the HPE GreenLake Flex Solutions API."""
