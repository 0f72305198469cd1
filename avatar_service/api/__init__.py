"""Generated gRPC stubs for the avatarlab.v1 contract (see protos/). Do not edit by hand."""
from avatar_service.api.avatarlab.v1 import avatarlab_pb2 as pb
from avatar_service.api.avatarlab.v1 import avatarlab_pb2_grpc as pb_grpc

__all__ = ["pb", "pb_grpc"]
