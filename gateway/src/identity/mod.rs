//! Identity from a company's OpenID Provider: verifying the ID tokens it signs. The data
//! plane's user tokens and the portal's sign-in build on this (issue-tracked work in progress:
//! issuer configuration and key fetching come next); it depends on nothing but the token, the
//! provider's published keys and the clock.

pub mod issuer;
pub mod jwt;
