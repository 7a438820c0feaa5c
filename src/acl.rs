//! Access control: Redis's `default` user, the one user respite has. `requirepass` and
//! `ACL SETUSER default ...` both edit it, as in Redis; passwords are kept as SHA-256 digests (what
//! ACL LIST and ACL GETUSER show) and checked without an early exit.

use sha2::{Digest, Sha256};

#[derive(Clone, Debug)]
pub struct DefaultUser {
    /// `on` / `off`: a disabled user cannot authenticate, so new connections get NOAUTH.
    pub enabled: bool,
    /// `nopass`: any password (or none) authenticates.
    pub nopass: bool,
    passwords: Vec<[u8; 32]>,
}

impl Default for DefaultUser {
    fn default() -> Self {
        DefaultUser {
            enabled: true,
            nopass: true,
            passwords: Vec::new(),
        }
    }
}

fn digest(pass: &[u8]) -> [u8; 32] {
    Sha256::digest(pass).into()
}

fn hex(d: &[u8; 32]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_hash(h: &[u8]) -> Option<[u8; 32]> {
    if h.len() != 64 || !h.iter().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c)) {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in h.chunks(2).enumerate() {
        out[i] = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(out)
}

const BAD_HASH: &str = "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters";

impl DefaultUser {
    /// `requirepass`: one password, or `nopass` when empty.
    pub fn set_requirepass(&mut self, pass: &[u8]) {
        self.passwords.clear();
        self.nopass = pass.is_empty();
        if !pass.is_empty() {
            self.passwords.push(digest(pass));
        }
    }

    /// A new connection starts authenticated as this user when it is on and needs no password.
    pub fn auto_authenticated(&self) -> bool {
        self.enabled && self.nopass
    }

    /// Whether `pass` logs in. Compares against every stored digest without stopping early.
    pub fn check(&self, pass: &[u8]) -> bool {
        let d = digest(pass);
        let mut matched = 0u8;
        for p in &self.passwords {
            let diff = p.iter().zip(&d).fold(0u8, |acc, (a, b)| acc | (a ^ b));
            matched |= (diff == 0) as u8;
        }
        self.enabled && (self.nopass || matched == 1)
    }

    /// Applies ACL SETUSER rules, all or none (Redis checks every rule before changing the user).
    /// The error is the text after "Error in ACL SETUSER modifier '<rule>': ".
    pub fn apply_rules(&mut self, rules: &[&[u8]]) -> Result<(), (usize, String)> {
        let mut next = self.clone();
        for (i, rule) in rules.iter().enumerate() {
            next.apply(rule).map_err(|e| (i, e))?;
        }
        *self = next;
        Ok(())
    }

    fn apply(&mut self, rule: &[u8]) -> Result<(), String> {
        let lower = rule.to_ascii_lowercase();
        match (lower.as_slice(), rule.first()) {
            (b"on", _) => self.enabled = true,
            (b"off", _) => self.enabled = false,
            (b"nopass", _) => {
                self.nopass = true;
                self.passwords.clear();
            }
            (b"resetpass", _) => {
                self.nopass = false;
                self.passwords.clear();
            }
            // Full access is what the default user has and all respite can grant.
            (b"~*" | b"allkeys" | b"%rw~*" | b"&*" | b"allchannels" | b"+@all" | b"allcommands", _) => {}
            (_, Some(b'>')) => {
                let d = digest(&rule[1..]);
                if !self.passwords.contains(&d) {
                    self.passwords.push(d);
                }
                self.nopass = false;
            }
            (_, Some(b'#')) => {
                let d = parse_hash(&rule[1..]).ok_or(BAD_HASH)?;
                if !self.passwords.contains(&d) {
                    self.passwords.push(d);
                }
                self.nopass = false;
            }
            (_, Some(b'<' | b'!')) => {
                let d = if rule[0] == b'<' {
                    digest(&rule[1..])
                } else {
                    parse_hash(&rule[1..]).ok_or(BAD_HASH)?
                };
                let before = self.passwords.len();
                self.passwords.retain(|p| *p != d);
                if self.passwords.len() == before {
                    return Err("The password you are trying to remove from the user does not exist".into());
                }
            }
            _ if is_acl_rule(&lower) => {
                return Err(
                    "respite's default user always has full access (~* &* +@all); only on/off and password rules can change".into(),
                );
            }
            _ => return Err("Syntax error".into()),
        }
        Ok(())
    }

    /// The user as ACL LIST describes it.
    pub fn describe(&self) -> String {
        let mut s = String::from("user default ");
        s.push_str(if self.enabled { "on" } else { "off" });
        if self.nopass {
            s.push_str(" nopass");
        }
        for p in &self.passwords {
            s.push_str(" #");
            s.push_str(&hex(p));
        }
        s.push_str(" ~* &* +@all");
        s
    }

    /// ACL GETUSER's flags.
    pub fn flags(&self) -> Vec<&'static str> {
        let mut f = vec![if self.enabled { "on" } else { "off" }];
        if self.nopass {
            f.push("nopass");
        }
        f
    }

    /// ACL GETUSER's passwords: the digests in hex.
    pub fn password_hashes(&self) -> Vec<String> {
        self.passwords.iter().map(hex).collect()
    }
}

/// Rules Redis knows that would restrict the user (keys, channels, commands, selectors, reset).
fn is_acl_rule(r: &[u8]) -> bool {
    matches!(r, b"reset" | b"resetkeys" | b"resetchannels" | b"nocommands" | b"clearselectors")
        || matches!(r.first(), Some(b'~' | b'%' | b'&' | b'+' | b'-' | b'('))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requirepass_and_rules_edit_one_user() {
        let mut u = DefaultUser::default();
        assert!(u.auto_authenticated() && u.check(b"anything"));
        u.set_requirepass(b"secret");
        assert!(!u.auto_authenticated() && u.check(b"secret") && !u.check(b"other"));
        assert!(u
            .describe()
            .contains("#2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b"));
        u.apply_rules(&[b">other", b"<secret"]).unwrap();
        assert!(u.check(b"other") && !u.check(b"secret"));
        // All or nothing: the bad rule leaves the user as it was.
        assert!(u.apply_rules(&[b"off", b"bogus"]).is_err());
        assert!(u.enabled);
        u.apply_rules(&[b"off"]).unwrap();
        assert!(!u.check(b"other"));
        u.apply_rules(&[b"on", b"nopass"]).unwrap();
        assert_eq!(u.describe(), "user default on nopass ~* &* +@all");
    }
}
