"""pytest plugin for asignal (fixtures and markers); see asignal.testing."""
