//! `nicctl vfs list`: a PF's VFs as a table.
use host_driver::sriov::VfInfo;

/// The `nicctl vfs list` table; `served(pf_index)` names the instance on a VF.
pub fn list_text(vfs: &[VfInfo], served: impl Fn(&VfInfo) -> Option<String>) -> String {
    if vfs.is_empty() {
        return "no VFs (create some with `nicctl vfs enable N --pf BDF`)\n".into();
    }
    let rows: Vec<[String; 6]> = vfs
        .iter()
        .map(|v| {
            [
                v.pf.clone(),
                format!("vf{}", v.index),
                v.bdf.clone(),
                v.iommu_group.map_or("-".into(), |g| g.to_string()),
                v.driver.clone().unwrap_or_else(|| "-".into()),
                served(v).unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    let header = ["PF", "VF", "ADDRESS", "IOMMU GROUP", "DRIVER", "INSTANCE"];
    let mut widths = header.map(str::len);
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    let line = |cells: &[&str]| {
        let mut s = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ");
        s.truncate(s.trim_end().len());
        s.push('\n');
        s
    };
    let mut out = line(&header);
    for r in &rows {
        out.push_str(&line(&r.each_ref().map(String::as_str)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vf(index: u32, bdf: &str, group: u32, driver: Option<&str>) -> VfInfo {
        VfInfo {
            pf: "0000:03:00.0".into(),
            index,
            bdf: bdf.into(),
            iommu_group: Some(group),
            driver: driver.map(String::from),
        }
    }

    #[test]
    fn the_list_is_a_table_with_the_instance_served() {
        let vfs = [
            vf(0, "0000:03:10.0", 40, Some("vfio-pci")),
            vf(1, "0000:03:10.2", 41, None),
        ];
        let text = list_text(&vfs, |v| (v.index == 0).then(|| "web1".to_string()));
        assert_eq!(
            text,
            "PF            VF   ADDRESS       IOMMU GROUP  DRIVER    INSTANCE\n\
             0000:03:00.0  vf0  0000:03:10.0  40           vfio-pci  web1\n\
             0000:03:00.0  vf1  0000:03:10.2  41           -         -\n"
        );
        assert!(list_text(&[], |_| None).starts_with("no VFs"));
    }
}
