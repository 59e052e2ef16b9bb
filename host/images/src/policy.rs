//! The policy hook: who may do what to which image, decided once per action for every API.
//!
//! The images service asks [`Policy::check`] before every action, on every path, with the
//! caller and the target. The answer says not only "no" but how the "no" reads: a
//! [`Refusal::Hidden`] is "not found", a [`Refusal::Forbidden`] "forbidden". Whatever a
//! policy answers, an image the caller may not see (`get_image`) is always "not found": the
//! service asks `get_image` first, and turns every refusal on a hidden image into one.
//!
//! [`DefaultPolicy`] is Tank's rules before policies were configurable: E0 Glance's, from
//! `tank_core::access`. The authentication issue plugs a rule file in here.

use tank_core::{Caller, Image};

use crate::Action;

/// What an action is done to.
#[derive(Debug, Clone, Copy, Default)]
pub struct Target<'a> {
    /// The image, for actions on one.
    pub image: Option<&'a Image>,
    /// The member, for actions on a membership.
    pub member: Option<&'a str>,
}

impl<'a> Target<'a> {
    /// An action on `image`.
    pub fn image(image: &'a Image) -> Target<'a> {
        Target { image: Some(image), member: None }
    }

    /// An action on `image`'s membership of `member`.
    pub fn member(image: &'a Image, member: &'a str) -> Target<'a> {
        Target { image: Some(image), member: Some(member) }
    }
}

/// How a refusal reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// As if the image did not exist.
    Hidden,
    /// The caller knows the image and is told it may not do this.
    Forbidden,
}

/// Decides actions.
///
/// # Contract
/// `check` is pure and quick: it runs on async workers, for every action of every request.
pub trait Policy: Send + Sync + 'static {
    /// Whether `caller` may do `action` to `target`.
    fn check(&self, caller: &Caller, action: Action, target: Target<'_>) -> Result<(), Refusal>;
}

/// Tank's rules without a policy file (E0 Glance's behaviour).
///
/// - Anyone may list and create; an image is readable, downloadable and its members
///   listable by whoever can see it (`Viewer::can_see`).
/// - Changes, deletes, uploads, tags, (de)activation and visibility changes are for the
///   owner and admins (`Viewer::can_modify`); a refusal of a public image reads
///   "forbidden", of any other "not found".
/// - Membership changes are for who may modify the image and for members holding
///   `can_share` (`Viewer::can_share`), and a refusal always reads "not found", as E0's did.
/// - A member's own status is changed by that member or an admin.
/// - Removing an image's data from one of its stores, and copying it into more, are for
///   admins (Glance's `delete_image_location` and `copy_image`).
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultPolicy;

impl Policy for DefaultPolicy {
    fn check(&self, caller: &Caller, action: Action, target: Target<'_>) -> Result<(), Refusal> {
        let viewer = caller.viewer();
        let Some(image) = target.image else {
            // Actions on no image: lists and creates.
            return Ok(());
        };
        let hide_or_forbid = if viewer.refusal_hides(image) { Refusal::Hidden } else { Refusal::Forbidden };
        let allowed = match action {
            Action::GetImages | Action::AddImage | Action::CopyFrom => true,
            Action::GetImage | Action::DownloadImage | Action::GetMembers | Action::GetMember => viewer.can_see(image),
            Action::ModifyImage
            | Action::DeleteImage
            | Action::PublicizeImage
            | Action::CommunitizeImage
            | Action::UploadImage
            | Action::SetImageLocation
            | Action::Deactivate
            | Action::Reactivate
            | Action::AddTag
            | Action::DeleteTag => viewer.can_modify(image),
            Action::AddMember | Action::DeleteMember => {
                return if viewer.can_share(image) { Ok(()) } else { Err(Refusal::Hidden) };
            }
            Action::ModifyMember => {
                viewer.is_admin || target.member.is_some_and(|m| viewer.tenant.as_deref() == Some(m))
            }
            // Glance's default: removing one copy of an image's data is an operator's job.
            Action::DeleteImageLocation => viewer.is_admin,
            // Glance's default: copying an image into more stores costs the operator's space.
            Action::CopyImage => viewer.is_admin,
        };
        if allowed {
            Ok(())
        } else {
            Err(hide_or_forbid)
        }
    }
}

#[cfg(test)]
mod tests {
    use tank_core::{ImageId, Member, Timestamp, Visibility};

    use super::*;

    fn tenant(t: &str) -> Caller {
        Caller::new(None, Some(t.into()), vec!["member".into()], true)
    }

    fn image(visibility: Visibility) -> Image {
        let mut i = Image::new(ImageId::random(), Timestamp::from_unix_micros(1));
        i.owner = Some("owner".into());
        i.visibility = visibility;
        i.members.push(Member::new("friend", true, Timestamp::from_unix_micros(1)));
        i.members.push(Member::new("guest", false, Timestamp::from_unix_micros(1)));
        i
    }

    #[test]
    fn owners_and_admins_change_others_are_refused_as_the_image_reads() {
        let p = DefaultPolicy;
        for action in Action::ALL {
            for visibility in Visibility::ALL {
                let img = image(visibility);
                let target = Target::member(&img, "guest");
                assert_eq!(p.check(&Caller::admin(), action, target), Ok(()), "admin {action}");
                if !matches!(action, Action::ModifyMember | Action::DeleteImageLocation | Action::CopyImage) {
                    assert_eq!(p.check(&tenant("owner"), action, target), Ok(()), "owner {action} {visibility}");
                }
            }
        }
        let public = image(Visibility::Public);
        let shared = image(Visibility::Shared);
        let check = |who: &str, action, img| DefaultPolicy.check(&tenant(who), action, Target::image(img));
        assert_eq!(check("stranger", Action::ModifyImage, &public), Err(Refusal::Forbidden));
        assert_eq!(check("guest", Action::ModifyImage, &shared), Err(Refusal::Hidden), "a member learns nothing");
        assert_eq!(check("guest", Action::GetImage, &shared), Ok(()));
        assert_eq!(check("stranger", Action::GetImage, &shared), Err(Refusal::Hidden));
        assert_eq!(check("friend", Action::AddMember, &shared), Ok(()), "can_share shares");
        assert_eq!(check("guest", Action::AddMember, &shared), Err(Refusal::Hidden));
        assert_eq!(check("stranger", Action::DeleteMember, &public), Err(Refusal::Hidden), "E0: always not found");
        assert_eq!(check("stranger", Action::AddImage, &public), Ok(()));
    }

    #[test]
    fn a_member_changes_its_own_membership_only() {
        let img = image(Visibility::Shared);
        let p = DefaultPolicy;
        assert_eq!(p.check(&tenant("guest"), Action::ModifyMember, Target::member(&img, "guest")), Ok(()));
        assert_eq!(
            p.check(&tenant("guest"), Action::ModifyMember, Target::member(&img, "friend")),
            Err(Refusal::Hidden)
        );
        assert_eq!(
            p.check(&tenant("owner"), Action::ModifyMember, Target::member(&img, "guest")),
            Err(Refusal::Forbidden),
            "the owner knows its image: refused, not hidden"
        );
    }
}
