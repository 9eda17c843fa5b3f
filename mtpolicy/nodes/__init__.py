"""rclpy nodes of the stack: ``controller`` (policy), ``sim`` (MuJoCo), ``goals`` (goal tool)."""
