"""The reference deployment's CDK app (`cdk deploy`): its stack composes the constructs of `pipeskit.cdk`."""
