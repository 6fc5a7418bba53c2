/**
 * Test helpers of the ZeroRealm SDK: a software WebAuthn authenticator that
 * signs in against a real realm without a browser.
 *
 * @module
 */
export { SoftwareAuthenticator, type SoftwareAuthenticatorOptions } from "./authenticator.js";
export { encodeCBOR, type CBORValue } from "./cbor.js";
