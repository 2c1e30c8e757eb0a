/**
 * @module build/registry
 * The OCI distribution client as a library: references, credentials and the
 * auth flow, pull and push. Imports only src/core, build/oci (media types,
 * digests) and node:*, as ko's layering has it: oci <- registry.
 */
export {
  authFilePaths,
  type Challenge,
  type CredentialLookup,
  type CredentialSearchOptions,
  Credentials,
  findCredentials,
  normalizeAuthKey,
  parseWwwAuthenticate,
  RegistryAuthenticator,
  repositoryScope,
} from "./auth.js";
export { type BlobBody, type BlobReader, type BlobSource, bytesSource, fileSource, layoutBlobReader, memoryBlobReader } from "./blobs.js";
export {
  type BlobAction,
  type BlobDownload,
  type BlobPushResult,
  type CopyBlobOptions,
  copyBlob,
  type ManifestResult,
  type PlatformResult,
  type PushImageOptions,
  type PushImageResult,
  RegistryClient,
  type RegistryClientOptions,
  type RetryOptions,
} from "./client.js";
export { DigestVerifier, sha256Digest } from "./digest.js";
export { RegistryError, type RegistryErrorEntry } from "./errors.js";
export * from "./media-types.js";
export {
  availablePlatforms,
  formatPlatform,
  nodePlatform,
  normalizePlatform,
  type PlatformSpec,
  parsePlatform,
  selectPlatform,
} from "./platform.js";
export {
  DOCKER_HUB,
  DOCKER_HUB_API_HOST,
  DOCKER_HUB_AUTH_KEY,
  formatReference,
  type ImageReference,
  isLoopbackRegistry,
  manifestReference,
  parseReference,
  registryApiHost,
  validateDigest,
} from "./reference.js";
