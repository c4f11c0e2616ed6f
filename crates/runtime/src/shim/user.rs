//! Resolving a container's `user` the way Docker does: from the host's
//! `/etc/passwd` and `/etc/group` files (no NSS, so no LDAP users), with a
//! numeric uid allowed to be absent from them.

use std::fs;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecUser {
    pub uid: u32,
    pub gid: u32,
    /// From the passwd entry, if there is one.
    pub home: Option<String>,
}

struct Passwd<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
    home: &'a str,
}

fn passwd_entries(text: &str) -> impl Iterator<Item = Passwd<'_>> {
    text.lines().filter_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        Some(Passwd {
            name: f.first()?,
            uid: f.get(2)?.parse().ok()?,
            gid: f.get(3)?.parse().ok()?,
            home: f.get(5)?,
        })
    })
}

fn group_gid(groups: &str, name: &str) -> Option<u32> {
    groups.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        (f.first() == Some(&name)).then(|| f.get(2)?.parse().ok())?
    })
}

/// Resolve `user` (`uid`, `uid:gid`, `name` or `name:group`) against the
/// given passwd and group file contents.
pub fn resolve_in(user: &str, passwd: &str, groups: &str) -> Result<ExecUser, String> {
    let (who, group) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let entry = match who.parse::<u32>() {
        Ok(uid) => passwd_entries(passwd).find(|p| p.uid == uid),
        Err(_) => passwd_entries(passwd).find(|p| p.name == who),
    };
    let (uid, default_gid, home) = match (&entry, who.parse::<u32>()) {
        (Some(p), _) => (p.uid, p.gid, Some(p.home.to_string())),
        // Docker runs an unknown numeric uid with gid 0.
        (None, Ok(uid)) => (uid, 0, None),
        (None, Err(_)) => {
            return Err(format!(
                "unable to find user {who}: no matching entries in passwd file"
            ))
        }
    };
    let gid = match group {
        None => default_gid,
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => group_gid(groups, g).ok_or_else(|| {
                format!("unable to find group {g}: no matching entries in group file")
            })?,
        },
    };
    Ok(ExecUser { uid, gid, home })
}

/// Resolve `user` against this host's `/etc/passwd` and `/etc/group`.
pub fn resolve(user: &str) -> Result<ExecUser, String> {
    let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
    let groups = fs::read_to_string("/etc/group").unwrap_or_default();
    resolve_in(user, &passwd, &groups)
}

/// The passwd home of `uid`, if it has an entry.
pub fn home_of(uid: u32) -> Option<String> {
    let passwd = fs::read_to_string("/etc/passwd").ok()?;
    let home = passwd_entries(&passwd)
        .find(|p| p.uid == uid)?
        .home
        .to_string();
    Some(home)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nweb:x:1000:1001::/srv/web:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nstaff:x:50:web\n";

    fn user(uid: u32, gid: u32, home: Option<&str>) -> ExecUser {
        ExecUser {
            uid,
            gid,
            home: home.map(Into::into),
        }
    }

    #[test]
    fn resolves_the_four_forms() {
        let r = |u| resolve_in(u, PASSWD, GROUP);
        assert_eq!(r("web"), Ok(user(1000, 1001, Some("/srv/web"))));
        assert_eq!(r("1000"), Ok(user(1000, 1001, Some("/srv/web"))));
        assert_eq!(r("web:staff"), Ok(user(1000, 50, Some("/srv/web"))));
        assert_eq!(r("1000:7"), Ok(user(1000, 7, Some("/srv/web"))));
        assert_eq!(r("4242"), Ok(user(4242, 0, None)));
        assert_eq!(r("4242:4243"), Ok(user(4242, 4243, None)));
    }

    #[test]
    fn unknown_names_are_errors() {
        assert!(resolve_in("nobody-here", PASSWD, GROUP)
            .unwrap_err()
            .contains("nobody-here"));
        assert!(resolve_in("web:nogroup", PASSWD, GROUP)
            .unwrap_err()
            .contains("nogroup"));
    }
}
