// SectorConnector module.
