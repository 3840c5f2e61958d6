//! Folder and JSONL datasets: pairing, skipping, corrupt images, errors.

use crate::data_support;

use data_support::{TempDir, test_image};
use imagen_train::data::{
    DataError, DataLoaderConfig, FolderDataset, ImageTextSource, JsonlDataset,
};

#[test]
fn folder_pairs_images_with_captions_and_counts_the_rest() {
    let tmp = TempDir::new("folder");
    let dir = tmp.path();
    test_image(8, 6, 1).save(dir.join("a.png")).unwrap();
    std::fs::write(dir.join("a.txt"), "  a red circle \n").unwrap();
    // Random bytes under an image name: listed, but unreadable.
    let noise: Vec<u8> = (0..256u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(dir.join("b.png"), &noise).unwrap();
    std::fs::write(dir.join("b.txt"), "a corrupt picture").unwrap();
    test_image(4, 4, 2).save(dir.join("c.png")).unwrap(); // no caption
    std::fs::write(dir.join("d.txt"), "no image").unwrap(); // no image
    test_image(5, 7, 3)
        .save_with_format(dir.join("e.JPG"), image::ImageFormat::Jpeg)
        .unwrap();
    std::fs::write(dir.join("e.txt"), "two green stars").unwrap();
    std::fs::write(dir.join("notes.md"), "ignored").unwrap();
    std::fs::create_dir(dir.join("sub")).unwrap();

    let data = FolderDataset::open(dir).unwrap();
    assert_eq!(data.len(), 3);
    assert_eq!((data.skipped_images(), data.skipped_captions()), (1, 1));
    let captions: Vec<String> = (0..3).map(|i| data.caption(i).unwrap()).collect();
    assert_eq!(
        captions,
        ["a red circle", "a corrupt picture", "two green stars"]
    );
    assert_eq!(data.image(0).unwrap().dimensions(), (8, 6));
    assert_eq!(data.image(2).unwrap().dimensions(), (5, 7));
    let err = data.image(1).unwrap_err();
    assert!(matches!(err, DataError::Image { .. }), "{err}");
    assert!(err.is_unreadable_example());
    assert!(matches!(
        data.image(3),
        Err(DataError::IndexOutOfRange { index: 3, len: 3 })
    ));

    // The loader skips the corrupt image, counts it, and keeps going.
    let mut loader = DataLoaderConfig::new(2, 8).init(&data).unwrap();
    for _ in 0..4 {
        let batch = loader.next_batch().unwrap();
        assert_eq!(batch.images.shape.as_slice(), &[2, 3, 8, 8]);
        assert!(!batch.indices.contains(&1));
    }
    assert_eq!(loader.skipped_corrupt(), 1);
    assert!(loader.corrupt_examples()[&1].contains("b.png"));
    // 8 examples returned, plus the corrupt one in each of the epochs seen.
    assert!(loader.position() > 8);
}

#[test]
fn empty_or_captionless_folders_are_errors() {
    let tmp = TempDir::new("empty");
    let err = FolderDataset::open(tmp.path()).unwrap_err();
    assert!(
        matches!(err, DataError::Empty { ref path } if path == tmp.path()),
        "{err}"
    );
    std::fs::write(tmp.path().join("a.txt"), "a caption").unwrap();
    test_image(4, 4, 0).save(tmp.path().join("b.png")).unwrap();
    assert!(matches!(
        FolderDataset::open(tmp.path()),
        Err(DataError::Empty { .. })
    ));
    let missing = tmp.path().join("missing");
    assert!(matches!(
        FolderDataset::open(&missing),
        Err(DataError::Io { .. })
    ));
}

#[test]
fn jsonl_resolves_paths_and_names_bad_lines() {
    let tmp = TempDir::new("jsonl");
    let dir = tmp.path();
    std::fs::create_dir(dir.join("images")).unwrap();
    test_image(6, 6, 1)
        .save(dir.join("images/one.png"))
        .unwrap();
    let absolute = dir.join("two.png");
    test_image(4, 8, 2).save(&absolute).unwrap();
    let manifest = dir.join("train.jsonl");
    let text = format!(
        "{{\"image\": \"images/one.png\", \"caption\": \" one \"}}\n\n\
         {{\"image\": {:?}, \"caption\": \"two\", \"extra\": 1}}\n\
         {{\"image\": \"gone.png\", \"caption\": \"missing file\"}}\n",
        absolute.to_str().unwrap()
    );
    std::fs::write(&manifest, text).unwrap();
    let data = JsonlDataset::open(&manifest).unwrap();
    assert_eq!(data.len(), 3);
    assert_eq!(data.caption(0).unwrap(), "one");
    assert_eq!(data.image(0).unwrap().dimensions(), (6, 6));
    assert_eq!(data.image(1).unwrap().dimensions(), (4, 8));
    let missing = data.image(2).unwrap_err();
    assert!(matches!(missing, DataError::Io { .. }) && missing.is_unreadable_example());

    std::fs::write(
        &manifest,
        "{\"image\": \"a.png\", \"caption\": \"ok\"}\n\n{\"image\": \"b.png\"}\n",
    )
    .unwrap();
    match JsonlDataset::open(&manifest) {
        Err(DataError::Manifest { line, reason, .. }) => {
            assert_eq!(line, 3);
            assert!(reason.contains("caption"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    std::fs::write(
        &manifest,
        "{\"image\": \"a.png\", \"caption\": \"ok\"}\nnot json\n",
    )
    .unwrap();
    let err = JsonlDataset::open(&manifest).unwrap_err();
    assert!(err.to_string().contains("line 2"), "{err}");
    std::fs::write(&manifest, "\n  \n").unwrap();
    assert!(matches!(
        JsonlDataset::open(&manifest),
        Err(DataError::Empty { .. })
    ));
}
