print("sector-gateway: not yet")
