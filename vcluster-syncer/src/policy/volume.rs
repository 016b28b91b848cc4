//! Volume checks: `hostPath` (baseline, with its allow-list of prefixes)
//! and the volume types restricted permits.

use k8s_openapi::api::core::v1::{PodSpec, Volume};

use super::report::{Findings, Rule};
use super::PodPolicy;

impl PodPolicy {
    /// Baseline: no `hostPath` volumes, except under allowed prefixes.
    pub(super) fn host_path_volumes(&self, spec: &PodSpec, out: &mut Findings) {
        for (i, volume) in spec.volumes.iter().flatten().enumerate() {
            if let Some(host_path) = &volume.host_path {
                if !self.host_path_allowed(&host_path.path) {
                    out.add(
                        Rule::HostPathVolumes,
                        format!("spec.volumes[{i}].hostPath"),
                        format!("hostPath {:?} is not allowed", host_path.path),
                    );
                }
            }
        }
    }

    /// Restricted: only the volume types it lists.
    pub(super) fn restricted_volume_types(&self, spec: &PodSpec, out: &mut Findings) {
        for (i, volume) in spec.volumes.iter().flatten().enumerate() {
            if let Some(kind) = restricted_volume_type(volume) {
                // hostPath has its own rule (and its allow-list) in baseline.
                if kind != "hostPath" {
                    out.add(
                        Rule::VolumeTypes,
                        format!("spec.volumes[{i}]"),
                        format!("volume type {kind} is not allowed"),
                    );
                }
            }
        }
    }

    fn host_path_allowed(&self, path: &str) -> bool {
        let Some(components) = clean_components(path) else {
            return false;
        };
        self.allow.host_path_prefixes.iter().any(|prefix| {
            clean_components(prefix).is_some_and(|prefix| {
                components.len() >= prefix.len() && components.starts_with(&prefix)
            })
        })
    }
}

/// The components of an absolute path, or `None` for a relative path or one
/// with `.` or `..` components (which could step out of an allowed prefix).
fn clean_components(path: &str) -> Option<Vec<&str>> {
    let rest = path.strip_prefix('/')?;
    let mut out = Vec::new();
    for component in rest.split('/') {
        match component {
            // `//` and a trailing `/` name the same directory.
            "" => continue,
            "." | ".." => return None,
            other => out.push(other),
        }
    }
    Some(out)
}

/// The type of a volume that restricted forbids, if it is one.
fn restricted_volume_type(volume: &Volume) -> Option<&'static str> {
    let allowed = volume.config_map.is_some()
        || volume.csi.is_some()
        || volume.downward_api.is_some()
        || volume.empty_dir.is_some()
        || volume.ephemeral.is_some()
        || volume.image.is_some()
        || volume.persistent_volume_claim.is_some()
        || volume.projected.is_some()
        || volume.secret.is_some();
    if allowed {
        return None;
    }
    let kinds: [(&'static str, bool); 21] = [
        ("hostPath", volume.host_path.is_some()),
        ("gcePersistentDisk", volume.gce_persistent_disk.is_some()),
        (
            "awsElasticBlockStore",
            volume.aws_elastic_block_store.is_some(),
        ),
        ("gitRepo", volume.git_repo.is_some()),
        ("nfs", volume.nfs.is_some()),
        ("iscsi", volume.iscsi.is_some()),
        ("glusterfs", volume.glusterfs.is_some()),
        ("rbd", volume.rbd.is_some()),
        ("flexVolume", volume.flex_volume.is_some()),
        ("cinder", volume.cinder.is_some()),
        ("cephfs", volume.cephfs.is_some()),
        ("flocker", volume.flocker.is_some()),
        ("fc", volume.fc.is_some()),
        ("azureFile", volume.azure_file.is_some()),
        ("vsphereVolume", volume.vsphere_volume.is_some()),
        ("quobyte", volume.quobyte.is_some()),
        ("azureDisk", volume.azure_disk.is_some()),
        ("portworxVolume", volume.portworx_volume.is_some()),
        (
            "photonPersistentDisk",
            volume.photon_persistent_disk.is_some(),
        ),
        ("scaleIO", volume.scale_io.is_some()),
        ("storageos", volume.storageos.is_some()),
    ];
    // A volume without any source is defaulted to an emptyDir.
    kinds.iter().find(|(_, set)| *set).map(|(kind, _)| *kind)
}
