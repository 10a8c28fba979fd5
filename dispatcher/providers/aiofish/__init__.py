"""aiofish (飞鱼短信): SMS (``client``, ``requests``, ``crypto``), video and international SMS
(``vsms``), return codes (``codes``), pushes (``push``) and one plug per channel for the
gateway registry (``plug``: SMS, ``vsms_plug``, ``isms_plug``)."""
