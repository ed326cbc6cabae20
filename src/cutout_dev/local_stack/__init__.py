"""The Cutout pipeline on one machine: moto server + resources from template.yaml + the real handlers driven
by Lambda-like SQS pollers, a schedule runner and a Function-URL-shaped webhook endpoint, against the Magic Hour
emulator. Nothing leaves 127.0.0.1.

    with LocalStack(LocalStackConfig(webhooks=False)) as stack:
        up = stack.upload(Path("samples/red flower.png"))
        stack.wait_for_terminal([up], timeout=30)
"""

from cutout_dev.local_stack.stack import (
    LOCAL_PARAMETERS,
    Endpoints,
    LocalStack,
    LocalStackConfig,
    Uploaded,
    redrive_messages,
)

__all__ = [
    "LOCAL_PARAMETERS",
    "Endpoints",
    "LocalStack",
    "LocalStackConfig",
    "Uploaded",
    "redrive_messages",
]
