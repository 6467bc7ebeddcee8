import { BackhaulError } from '@backhaul/core';

/** The fields every error of the AWS SDK v3 carries; plain network errors carry none of them. */
interface ServiceErrorShape {
  name?: string;
  Code?: string;
  $metadata?: { httpStatusCode?: number };
}

function shapeOf(error: unknown): ServiceErrorShape {
  return typeof error === 'object' && error !== null ? (error as ServiceErrorShape) : {};
}

function statusOf(error: unknown): number | undefined {
  return shapeOf(error).$metadata?.httpStatusCode;
}

function hasName(error: unknown, names: readonly string[]): boolean {
  const { name, Code } = shapeOf(error);
  return names.includes(name ?? '') || names.includes(Code ?? '');
}

/** HEAD answers 404 without a body, so the SDK can only name it `NotFound`; GET says `NoSuchKey`. */
export function isMissingObject(error: unknown): boolean {
  return hasName(error, ['NoSuchKey', 'NotFound']) || statusOf(error) === 404;
}

export function isMissingUpload(error: unknown): boolean {
  return hasName(error, ['NoSuchUpload']) || statusOf(error) === 404;
}

export function isMissingBucket(error: unknown): boolean {
  return hasName(error, ['NoSuchBucket', 'NotFound']) || statusOf(error) === 404;
}

export function isMissingLifecycle(error: unknown): boolean {
  return hasName(error, ['NoSuchLifecycleConfiguration']);
}

/** A range that starts at or past the end of the object. */
export function isUnsatisfiableRange(error: unknown): boolean {
  return hasName(error, ['InvalidRange']) || statusOf(error) === 416;
}

/**
 * The endpoint does not implement the operation. s3rver answers ListMultipartUploads and the
 * lifecycle calls with `NotImplemented`, and AbortMultipartUpload with `MethodNotAllowed`.
 */
export function isUnsupported(error: unknown): boolean {
  return hasName(error, ['NotImplemented', 'MethodNotAllowed']) || statusOf(error) === 501;
}

export function storageFailed(operation: string, error: unknown): BackhaulError {
  if (BackhaulError.isInstance(error)) return error;
  const reason = error instanceof Error ? error.message || error.name : String(error);
  return new BackhaulError('storage-failed', `Could not ${operation}: ${reason}`, { cause: error });
}
