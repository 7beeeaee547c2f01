"""moto's server, knowing only the AWS managed IAM policies bin/lambda-deploy attaches.

moto parses all of AWS's managed policies (1,500 of them, 4.7 MB of JSON) for each partition every
time it builds an account, which it does again after every reset: about two seconds of CPU per
test that starts from an empty account. With only the policies the tests use, a reset is free.
"""

from __future__ import annotations

import json
import sys

import moto.iam.models
from moto.server import main

POLICIES = ("AWSLambdaBasicExecutionRole", "AWSLambdaVPCAccessExecutionRole")

every_policy = json.loads(moto.iam.models.aws_managed_policies_data)
moto.iam.models.aws_managed_policies_data = json.dumps({name: every_policy[name] for name in POLICIES})

if __name__ == "__main__":
    sys.exit(main())
