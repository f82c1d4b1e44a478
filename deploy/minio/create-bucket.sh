#!/bin/sh
# Runs once in the compose `s3` profile (service minio-create-bucket, image
# minio/mc), after MinIO is healthy: creates the bucket download-gate serves
# files from, and a user that may only read it (read-policy.json: s3:GetObject
# on its objects, s3:ListBucket on the bucket, so a missing file is a 404 and
# not a 403). Safe to run again: everything that exists is left as it is.
set -eu

mc alias set local "$MINIO_URL" "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD" >/dev/null
mc mb --ignore-existing "local/$S3_BUCKET"
mc admin policy create local download-gate-read /etc/minio/read-policy.json
mc admin user add local "$S3_ACCESS_KEY_ID" "$S3_SECRET_ACCESS_KEY"
# Attaching a policy already attached is an error for mc: check before.
if ! mc admin user info local "$S3_ACCESS_KEY_ID" | grep -q download-gate-read; then
	mc admin policy attach local download-gate-read --user "$S3_ACCESS_KEY_ID"
fi
echo "create-bucket: bucket $S3_BUCKET readable by $S3_ACCESS_KEY_ID"
