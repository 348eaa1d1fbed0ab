"""What exists in AWS: the CDK app, its stack and the constructs it is composed of."""
