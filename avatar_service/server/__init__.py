"""The gRPC service: settings, thin servicers over the domain layer, interceptors, app lifecycle."""
