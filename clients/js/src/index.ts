/**
 * The ZeroRealm SDK: a typed client of the realm's HTTP API (generated from
 * its OpenAPI document), passkeys and sessions, the realm WebSocket, twins,
 * the market, and XR streaming. See README.md for a quick start.
 *
 * @module
 */
export { decodeBase64url, encodeBase64url } from "./base64url.js";
export { checkHandle, handleRule } from "./handle.js";
export type { components, operations, paths } from "./generated/api.js";
export { operationRoutes } from "./generated/operations.js";
export {
  RealmClient,
  newIdempotencyKey,
  type CallOptions,
  type CallResult,
  type ClientConfig,
  type OperationId,
  type PathParams,
  type QueryParams,
  type RequestBody,
  type ResponseBody,
} from "./http.js";
export {
  Passkeys,
  PasskeyError,
  Sessions,
  browserAuthenticator,
  credentialToJSON,
  creationOptionsFromJSON,
  requestOptionsFromJSON,
  type AuthenticationResponseJSON,
  type CreationOptionsJSON,
  type CredentialsContainerLike,
  type PasskeyAuthenticator,
  type RegistrationResponseJSON,
  type RequestOptionsJSON,
  type Session,
  type SessionOptions,
  type SignedIn,
  type StepUpVerified,
} from "./passkeys.js";
export { ProblemError, problemBase, problemFromResponse, retryAfterSeconds, type Problem } from "./problem.js";
export {
  CloseCode,
  LiveSocket,
  SocketClosedError,
  backoffDelay,
  type Backoff,
  type LiveEvents,
  type LiveSocketOptions,
  type WebSocketFactory,
  type WebSocketLike,
} from "./live.js";
export {
  JoinError,
  RealmSocket,
  presenceEvents,
  type AvatarPose,
  type Hello,
  type Joined,
  type Member,
  type MemberMark,
  type OnBehalfOf,
  type PasskeyAdded,
  type Pose,
  type Poses,
  type PresenceEvent,
  type RealmErrorMessage,
  type RealmEvents,
  type RealmSocketOptions,
  type Trust,
  type XRMessage,
  type XRScore,
  type XRStatus,
} from "./realm-socket.js";
export {
  TwinFeed,
  Twins,
  type ApprovalAnswer,
  type CommandAnswer,
  type CommandDigest,
  type CommandOptions,
  type CommandRequest,
  type CommandResult,
  type TwinFeedEvents,
  type TwinFeedMessage,
} from "./twins.js";
export {
  EIP712Error,
  addressOfPublicKey,
  bytesToHex,
  checksumAddress,
  encodeType,
  hashStruct,
  hashTypedData,
  hexToBytes,
  keccak256,
  parseSignature,
  recoverAddress,
  signDigest,
  type TypedData,
} from "./eip712.js";
export {
  Market,
  eip1193Signer,
  localKeySigner,
  randomSecretKey,
  verifyInclusion,
  verifyReceipt,
  type Domain,
  type EIP1193Provider,
  type PublishedCheckpoint,
  type Receipt,
  type ReceiptProof,
  type TransferAnswer,
  type TransferMessage,
  type TrustedSigner,
  type TypedDataSigner,
  type Verification,
  type VerifyOptions,
} from "./market.js";
export {
  connectXR,
  encodeFrames,
  maxFramesPerMessage,
  streamXR,
  webSocketTransport,
  xrFormatVersion,
  type ConnectXROptions,
  type StreamXROptions,
  type XRFrameLike,
  type XRFrameSample,
  type XRPose,
  type XRRigidTransformLike,
  type XRSessionLike,
  type XRTransport,
} from "./xr.js";
