/**
 * @module build/registry/media-types
 * The media types the registry client speaks (named from build/oci, the one
 * list of them), and the shapes of the JSON documents it reads from remote
 * registries (only the fields it uses, loosely typed; manifests are pushed
 * as bytes).
 */
import { isIndexMediaType, isManifestMediaType, MediaType } from "../oci/documents.js";

export const OCI_MANIFEST = MediaType.OciManifest;
export const OCI_INDEX = MediaType.OciIndex;
export const OCI_CONFIG = MediaType.OciConfig;
export const DOCKER_MANIFEST = MediaType.DockerManifest;
export const DOCKER_MANIFEST_LIST = MediaType.DockerManifestList;
export const DOCKER_CONFIG = MediaType.DockerConfig;

/**
 * Sent on every manifest GET. distribution 2.8 answers 404 MANIFEST_UNKNOWN
 * ("OCI manifest found, but accept header does not support OCI manifests")
 * when the OCI types are missing (oci-build.md §4.2), so always all four.
 */
export const MANIFEST_ACCEPT = [OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST].join(", ");

export const IMAGE_MANIFEST_TYPES: readonly string[] = [OCI_MANIFEST, DOCKER_MANIFEST];
export const INDEX_TYPES: readonly string[] = [OCI_INDEX, DOCKER_MANIFEST_LIST];

/** image-spec `specs-go/v1/descriptor.go` Platform. */
export interface Platform {
  architecture: string;
  os: string;
  variant?: string;
  "os.version"?: string;
  "os.features"?: string[];
}

/** image-spec descriptor (the fields used here). */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Platform;
  annotations?: Record<string, string>;
  urls?: string[];
}

/** An OCI image manifest or a Docker schema2 manifest. */
export interface ImageManifest {
  schemaVersion: 2;
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
}

/** An OCI image index or a Docker manifest list. */
export interface ImageIndex {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

export const isIndexType = isIndexMediaType;
export const isImageManifestType = isManifestMediaType;
