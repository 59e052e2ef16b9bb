//! `tank member`: sharing images with other tenants (the seed `glance` tool's
//! `image-members`, `member-images`, `member-add`, `member-delete`, `members-replace`),
//! and v2's answers to an offer (`accept`, `reject`).

use clap::{Args, Subcommand};
use serde_json::json;
use tank_client::{Client, MemberChange};

use super::{exit::member_error, output, runtime, Connection};

/// `tank member`.
#[derive(Debug, Args)]
pub struct MemberArgs {
    #[command(flatten)]
    conn: Connection,
    #[command(subcommand)]
    verb: MemberVerb,
}

/// The member verbs. Changing members needs a caller with a tenant: the image's owner,
/// an admin, or a member that may share it (behind a proxy that authenticates --token).
#[derive(Debug, Subcommand)]
enum MemberVerb {
    /// List the tenants an image is shared with.
    #[command(after_help = "Example:\n  tank member list 71c6d9d2-6f1a-4f0e-9a7c-2b4e1c3d5f60")]
    List {
        /// The image's id.
        image: String,
    },
    /// List the images shared with a tenant.
    #[command(after_help = "Example:\n  tank member images tenant-b --json")]
    Images {
        /// The tenant.
        member: String,
    },
    /// Share an image with a tenant.
    ///
    /// Without --can-share a new member may not share the image further and an existing
    /// one keeps what it had; --can-share (or --can-share=false) sets it.
    #[command(after_help = "\
Examples:
  tank member add 71c6d9d2-6f1a-4f0e-9a7c-2b4e1c3d5f60 tenant-b
  tank member add 71c6d9d2-6f1a-4f0e-9a7c-2b4e1c3d5f60 tenant-b --can-share")]
    Add {
        /// The image's id.
        image: String,
        /// The tenant.
        member: String,
        /// Let the tenant share the image further (true or false; alone: true).
        #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
        can_share: Option<bool>,
    },
    /// Stop sharing an image with a tenant.
    #[command(after_help = "Example:\n  tank member delete 71c6d9d2-6f1a-4f0e-9a7c-2b4e1c3d5f60 tenant-b")]
    Delete {
        /// The image's id.
        image: String,
        /// The tenant.
        member: String,
    },
    /// Accept an image shared with your tenant, so that it appears in your lists (v2).
    ///
    /// Only the member itself answers an offer; TENANT is your own tenant (project).
    #[command(
        after_help = "Example:\n  tank member accept 71c6d9d2-6f1a-4f0e-9a7c-2b4e1c3d5f60 tenant-b --token $TOKEN"
    )]
    Accept {
        /// The image's id.
        image: String,
        /// Your tenant.
        member: String,
    },
    /// Reject an image shared with your tenant: it stays out of your lists (v2).
    #[command(
        after_help = "Example:\n  tank member reject 71c6d9d2-6f1a-4f0e-9a7c-2b4e1c3d5f60 tenant-b --token $TOKEN"
    )]
    Reject {
        /// The image's id.
        image: String,
        /// Your tenant.
        member: String,
    },
    /// Make the given tenants the image's only members; the others lose access.
    ///
    /// Every tenant given gets --can-share's value (default false).
    #[command(
        after_help = "Example:\n  tank member replace 71c6d9d2-6f1a-4f0e-9a7c-2b4e1c3d5f60 tenant-b tenant-c --can-share"
    )]
    Replace {
        /// The image's id.
        image: String,
        /// The tenants.
        #[arg(required = true)]
        members: Vec<String>,
        /// Let these tenants share the image further.
        #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
        can_share: Option<bool>,
    },
}

/// Runs `tank member <verb>`.
pub fn run(args: MemberArgs) -> anyhow::Result<()> {
    let client = args.conn.client()?;
    let json = args.conn.json;
    runtime()?.block_on(async move {
        match args.verb {
            MemberVerb::List { image } => list(&client, json, &image).await,
            MemberVerb::Images { member } => {
                let shared = client
                    .shared_images(&member)
                    .await
                    .map_err(|e| member_error(&format!("cannot list the images shared with {member}"), e))?;
                if json {
                    return output::json(&json!({ "shared_images": shared }));
                }
                if shared.is_empty() {
                    println!("No images are shared with {member}");
                    return Ok(());
                }
                let rows: Vec<Vec<String>> =
                    shared.iter().map(|s| vec![s.image_id.clone(), standing(s.can_share, &s.status)]).collect();
                output::table(&mut std::io::stdout().lock(), &["IMAGE", column(&client)], &rows)?;
                Ok(())
            }
            MemberVerb::Accept { image, member } => answer(&client, json, &image, &member, "accepted").await,
            MemberVerb::Reject { image, member } => answer(&client, json, &image, &member, "rejected").await,
            MemberVerb::Add { image, member, can_share } => {
                client
                    .add_member(&image, &member, can_share)
                    .await
                    .map_err(|e| member_error(&format!("cannot share image {image} with {member}"), e))?;
                changed(&client, json, &image, &format!("Image {image} is shared with {member}")).await
            }
            MemberVerb::Delete { image, member } => {
                client
                    .delete_member(&image, &member)
                    .await
                    .map_err(|e| member_error(&format!("cannot stop sharing image {image} with {member}"), e))?;
                changed(&client, json, &image, &format!("Image {image} is no longer shared with {member}")).await
            }
            MemberVerb::Replace { image, members, can_share } => {
                let changes: Vec<MemberChange> = members
                    .iter()
                    .map(|m| MemberChange { member_id: m.clone(), can_share: Some(can_share.unwrap_or(false)) })
                    .collect();
                client
                    .replace_members(&image, &changes)
                    .await
                    .map_err(|e| member_error(&format!("cannot replace the members of image {image}"), e))?;
                changed(&client, json, &image, &format!("Image {image} is shared with {} only", members.join(", ")))
                    .await
            }
        }
    })
}

/// A member's standing: v2's status, or v1's right to share.
fn standing(can_share: bool, status: &Option<String>) -> String {
    match status {
        Some(status) => status.clone(),
        None if can_share => "yes".into(),
        None => "no".into(),
    }
}

/// The heading of [`standing`]'s column.
fn column(client: &Client) -> &'static str {
    match client.api() {
        tank_client::Api::V1 => "CAN SHARE",
        _ => "STATUS",
    }
}

/// `accept` and `reject`: the member's answer to the offer of `image`.
async fn answer(client: &Client, json: bool, image: &str, member: &str, status: &str) -> anyhow::Result<()> {
    let m = client
        .set_member_status(image, member, status)
        .await
        .map_err(|e| member_error(&format!("cannot set {member}'s answer to image {image}"), e))?;
    if json {
        return output::json(&json!({ "image_id": image, "member": m }));
    }
    println!("Image {image} is {} by {member}", m.status.as_deref().unwrap_or(status));
    Ok(())
}

async fn list(client: &Client, json: bool, image: &str) -> anyhow::Result<()> {
    let members =
        client.members(image).await.map_err(|e| member_error(&format!("cannot list the members of {image}"), e))?;
    if json {
        return output::json(&json!({ "image_id": image, "members": members }));
    }
    if members.is_empty() {
        println!("Image {image} is not shared with anyone");
        return Ok(());
    }
    let rows: Vec<Vec<String>> =
        members.iter().map(|m| vec![m.member_id.clone(), standing(m.can_share, &m.status)]).collect();
    output::table(&mut std::io::stdout().lock(), &["MEMBER", column(client)], &rows)?;
    Ok(())
}

/// After a change: says what was done, then shows the member list as it now is.
async fn changed(client: &Client, json: bool, image: &str, done: &str) -> anyhow::Result<()> {
    if !json {
        println!("{done}");
    }
    list(client, json, image).await
}
