//! The scene catalogue: names for the command line, inputs, and the one `render` entry point.
//!
//! A scene is chosen by name (`demo=<name>` on the kernel command line, `--scene` in the host
//! tool). [`Scene::from_name`] fails with [`UnknownScene`], whose `Display` lists the valid names,
//! so callers can print a helpful error. [`render`] draws frame `frame` of a scene into any
//! `DrawTarget<Color = Rgb888>`; the resolution is the target's bounding box.

use core::fmt;

use embedded_graphics::draw_target::DrawTarget;
use embedded_graphics::pixelcolor::Rgb888;

use crate::scenes;

/// Default frame rate when the caller has none configured.
pub const DEFAULT_FPS: u32 = 60;

/// A demo scene.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scene {
    /// Colour bars, gradients, a grid, geometry circle, resolution and frame counter.
    Testcard,
    /// Shapes moving across the screen and bouncing off its edges.
    Bounce,
    /// A full-screen animated plasma, computed per pixel in fixed point.
    Plasma,
    /// An analog clock whose hands are driven by frame number and frame rate.
    Clock,
    /// Live figures of the running guest (frame, fps, late frames) as text and a graph.
    Stats,
    /// Stars flying towards the viewer.
    Starfield,
    /// A rotating, zooming XOR texture, computed per pixel in fixed point.
    Rotozoom,
}

/// Every scene, in the order [`Scene::names`] lists them.
const ALL: [Scene; 7] = [
    Scene::Testcard,
    Scene::Bounce,
    Scene::Plasma,
    Scene::Clock,
    Scene::Stats,
    Scene::Starfield,
    Scene::Rotozoom,
];

impl Scene {
    /// Every scene.
    pub fn all() -> &'static [Scene] {
        &ALL
    }

    /// The scene's command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Scene::Testcard => "testcard",
            Scene::Bounce => "bounce",
            Scene::Plasma => "plasma",
            Scene::Clock => "clock",
            Scene::Stats => "stats",
            Scene::Starfield => "starfield",
            Scene::Rotozoom => "rotozoom",
        }
    }

    /// The valid scene names, in catalogue order.
    pub fn names() -> impl Iterator<Item = &'static str> + Clone {
        ALL.iter().map(|s| s.name())
    }

    /// The scene called `name` (exact, lower case).
    pub fn from_name(name: &str) -> Result<Scene, UnknownScene<'_>> {
        ALL.iter()
            .copied()
            .find(|s| s.name() == name)
            .ok_or(UnknownScene { name })
    }
}

impl fmt::Display for Scene {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A scene name that is not in the catalogue; `Display` lists the valid ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownScene<'a> {
    /// The name that was asked for.
    pub name: &'a str,
}

impl fmt::Display for UnknownScene<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown demo scene {:?}; valid scenes:", self.name)?;
        for name in Scene::names() {
            write!(f, " {name}")?;
        }
        Ok(())
    }
}

/// Figures of the running guest, shown by the `stats` scene.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FrameStats<'a> {
    /// Flips the backend has completed (frame-done events received).
    pub flips_completed: u64,
    /// Frames that missed their deadline and were skipped.
    pub late_frames: u64,
    /// Measured frame rate in millihertz (59 940 = 59.94 fps); 0 when unknown.
    pub measured_fps_milli: u32,
    /// Recent frame intervals in microseconds, oldest first (the graph shows the last ones).
    pub frame_intervals_us: &'a [u32],
}

/// Everything a scene may depend on besides the frame number and the resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SceneInput<'a> {
    /// Configured frame rate (frames per second, ≥ 1; 0 is treated as 1): animation speeds are
    /// defined per second, so a scene looks the same at any rate.
    pub fps: u32,
    /// Figures for the `stats` scene; other scenes ignore them.
    pub stats: FrameStats<'a>,
}

impl SceneInput<'_> {
    /// Input for a guest running at `fps` with no figures yet.
    pub const fn with_fps(fps: u32) -> Self {
        Self {
            fps,
            stats: FrameStats {
                flips_completed: 0,
                late_frames: 0,
                measured_fps_milli: 0,
                frame_intervals_us: &[],
            },
        }
    }

    /// The frame rate, at least 1.
    pub fn fps(&self) -> u32 {
        self.fps.max(1)
    }
}

impl Default for SceneInput<'_> {
    fn default() -> Self {
        Self::with_fps(DEFAULT_FPS)
    }
}

/// Draws frame `frame` of `scene` into `target`, covering its whole bounding box.
pub fn render<D>(
    scene: Scene,
    frame: u64,
    target: &mut D,
    input: &SceneInput<'_>,
) -> Result<(), D::Error>
where
    D: DrawTarget<Color = Rgb888>,
{
    match scene {
        Scene::Testcard => scenes::testcard::draw(frame, target, input),
        Scene::Bounce => scenes::bounce::draw(frame, target, input),
        Scene::Plasma => scenes::plasma::draw(frame, target, input),
        Scene::Clock => scenes::clock::draw(frame, target, input),
        Scene::Stats => scenes::stats::draw(frame, target, input),
        Scene::Starfield => scenes::starfield::draw(frame, target, input),
        Scene::Rotozoom => scenes::rotozoom::draw(frame, target, input),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for &scene in Scene::all() {
            assert_eq!(Scene::from_name(scene.name()), Ok(scene));
        }
        assert_eq!(Scene::names().count(), Scene::all().len());
        assert!(Scene::names().count() >= 5);
    }

    #[test]
    fn unknown_names_list_valid_ones() {
        let err = Scene::from_name("Plasma").unwrap_err();
        assert_eq!(err.name, "Plasma");
        let msg = err.to_string();
        assert!(msg.starts_with("unknown demo scene \"Plasma\"; valid scenes: testcard bounce"));
        for name in Scene::names() {
            assert!(msg.contains(name));
        }
        assert!(Scene::from_name("").is_err());
    }
}
