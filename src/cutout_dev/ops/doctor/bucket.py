"""The bucket's checks: EventBridge notifications on, its region the stack's, and its encryption (a KMS key the
functions may use)."""

from __future__ import annotations

import shlex

from botocore.exceptions import ClientError

from cutout_dev.ops.doctor.base import (
    Check,
    DoctorContext,
)


class BucketChecks:
    def __init__(self, ctx: DoctorContext) -> None:
        self.ctx = ctx

    # -- the bucket --------------------------------------------------------------------------------------------
    def bucket_events(self) -> Check:
        bucket = self.ctx.target.bucket
        config = self.ctx.target.client("s3").get_bucket_notification_configuration(Bucket=bucket)
        if "EventBridgeConfiguration" in config:
            return Check("bucket-events", "ok", f"s3://{bucket} sends its events to EventBridge")
        others = [
            k for k in ("TopicConfigurations", "QueueConfigurations", "LambdaFunctionConfigurations") if config.get(k)
        ]
        put = f"{self.ctx.aws} s3api put-bucket-notification-configuration --bucket {shlex.quote(bucket)}"
        if others:
            # PutBucketNotificationConfiguration replaces the whole configuration ("Amazon S3 API Reference"):
            # merge, or the bucket's other notifications are lost.
            fix = (
                f"{self.ctx.aws} s3api get-bucket-notification-configuration --bucket {shlex.quote(bucket)}"
                " > notif.json\n"
                "jq '. + {\"EventBridgeConfiguration\": {}}' notif.json > notif-eb.json\n"
                f"{put} --notification-configuration file://notif-eb.json"
            )
        else:
            fix = f"{put} --notification-configuration '{{\"EventBridgeConfiguration\": {{}}}}'"
        kept = f" (it keeps {', '.join(others)}: merge, the call replaces them all)" if others else ""
        return Check(
            "bucket-events",
            "fail",
            f"s3://{bucket} does not send events to EventBridge: uploads start no job{kept}",
            fix,
        )

    def bucket_region(self) -> Check:
        """EventBridge rules see only the events of their own region (EventBridge User Guide, "Amazon EventBridge
        rules"), so a bucket in another region than the stack sends its uploads to a bus nothing listens on."""
        bucket, region = self.ctx.target.bucket, self.ctx.target.region
        location = self.ctx.target.client("s3").get_bucket_location(Bucket=bucket).get("LocationConstraint")
        # GetBucketLocation answers no constraint for us-east-1, and "EU" for buckets made in eu-west-1 long ago
        # (Amazon S3 API Reference, "GetBucketLocation").
        bucket_region = {None: "us-east-1", "": "us-east-1", "EU": "eu-west-1"}.get(location, str(location))
        if bucket_region == region:
            return Check("bucket-region", "ok", f"s3://{bucket} is in {region}, the stack's region")
        if self.ctx.target.local:
            fix = f"cutout local up --param ExistingBucketName=<a bucket in {region}>"
        else:
            fix = (
                "# deploy the stack in the bucket's region (a new stack there, then sam delete this one):\n"
                f"{self.ctx.redeploy()} --region {bucket_region}"
            )
        return Check(
            "bucket-region",
            "fail",
            f"s3://{bucket} is in {bucket_region}, the stack in {region}: EventBridge rules only see their own "
            "region's events, so no upload starts a job",
            fix,
        )

    def bucket_encryption(self) -> list[Check]:
        buckets = dict.fromkeys([self.ctx.target.bucket, self.ctx.target.output_bucket])
        return [self._encryption(bucket, len(buckets) > 1) for bucket in buckets]

    def _encryption(self, bucket: str, several: bool) -> Check:
        # A separate output bucket may have a key of its own (OutputBucketKmsKeyArn); sharing the images bucket's
        # key (BucketKmsKeyArn) works too, as finalize may write with that one.
        parameters = ["BucketKmsKeyArn"]
        if bucket != self.ctx.target.bucket:
            parameters.insert(0, "OutputBucketKmsKeyArn")
        name = f"bucket-encryption:{bucket}" if several else "bucket-encryption"
        s3 = self.ctx.target.client("s3")
        try:
            rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ServerSideEncryptionConfigurationNotFoundError":
                raise
            # "Setting default server-side encryption behavior for Amazon S3 buckets": every bucket encrypts new
            # objects with SSE-S3 when nothing else is configured.
            return Check(name, "ok", f"s3://{bucket}: no default encryption configured (S3 applies SSE-S3)")
        default = (rules[0] if rules else {}).get("ApplyServerSideEncryptionByDefault") or {}
        algorithm = str(default.get("SSEAlgorithm") or "AES256")
        key = default.get("KMSMasterKeyID")
        if not algorithm.startswith("aws:kms"):
            return Check(name, "ok", f"s3://{bucket}: {algorithm} (S3 managed keys)")
        if not key:
            return Check(name, "ok", f"s3://{bucket}: {algorithm} with the AWS managed key aws/s3")
        meta = self.ctx.target.client("kms").describe_key(KeyId=str(key))["KeyMetadata"]
        if meta.get("KeyManager") == "AWS":
            return Check(name, "ok", f"s3://{bucket}: {algorithm} with an AWS managed key")
        arn = str(meta.get("Arn") or key)
        for parameter in parameters:
            given = self.ctx.target.parameters.get(parameter, "")
            if given and self._same_key(given, arn):
                return Check(name, "ok", f"s3://{bucket}: {algorithm} with {arn}, given to the stack ({parameter})")
        parameter = parameters[0]
        given = self.ctx.target.parameters.get(parameter, "")
        told = f"the stack was given {given}" if given else f"the stack was not given it ({parameter} is empty)"
        return Check(
            name,
            "fail",
            f"s3://{bucket}: {algorithm} with the customer managed key {arn}; {told}: the functions cannot read "
            "uploads or write cutouts without kms:Decrypt / kms:GenerateDataKey on it",
            self.ctx.redeploy(**{parameter: arn}),
        )

    def _same_key(self, given: str, arn: str) -> bool:
        if given == arn:
            return True
        try:  # an alias or key id given for the key's ARN
            return str(self.ctx.target.client("kms").describe_key(KeyId=given)["KeyMetadata"].get("Arn")) == arn
        except ClientError:
            return False
