"""S3: passed through to the lake's S3 server, which verifies signatures itself."""
