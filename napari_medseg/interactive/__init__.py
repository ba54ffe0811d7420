"""Click-based interactive refinement: session, engines, click encoding, robot user."""
from napari_medseg.interactive._clicks import Click, clicks_to_json, guidance_maps, read_clicks
from napari_medseg.interactive._learned import suggestion_map
from napari_medseg.interactive._robot import (
    clicks_to_reach, dice_score, robot_click, robot_trial)
from napari_medseg.interactive._session import Change, InteractiveSession, make_engine

__all__ = ["Change", "Click", "InteractiveSession", "clicks_to_json", "clicks_to_reach",
           "dice_score", "guidance_maps", "make_engine", "read_clicks", "robot_click",
           "robot_trial", "suggestion_map"]
