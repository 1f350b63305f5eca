"""What an operator watches: health and readiness endpoints, metrics, logging, secret masking."""
