//! Plain HTTP around the API: the HTML pages and embedded assets, the security headers, CORS,
//! HSTS, the Origin and CSRF rules, and the client address (behind which proxies).

pub mod assets;
pub mod client_ip;
pub mod cors;
pub mod hsts;
pub mod origin;
pub mod pages;
pub mod trusted_proxies;
