"""Code shared by the edge, the cloud and training: codecs, wire format, task models, schemas."""
